"""Strip symbol tables from the native libraries of a Linux bundle, where that is safe.

PyInstaller's own `strip=True` strips every binary, which breaks the libraries that auditwheel vendored
into manylinux wheels (numpy's OpenBLAS then fails to load: "ELF load command address/offset not
page-aligned"). Here only these are stripped:
  * ELF files that still carry a symbol table (`.symtab`),
  * not in a wheel's `<name>.libs/` folder and without an `$ORIGIN` RPATH/RUNPATH (auditwheel's marks:
    files patchelf rewrote),
and a stripped copy is kept only if its loadable segments are still page-aligned; otherwise the
original is used. Stripped copies are cached in the build's work folder.

In build.spec:  a.binaries = slim.strip_binaries(a.binaries, Path(workpath) / "stripped")
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

PAGE = 4096


def _elf64_le(data: bytes) -> bool:
    return data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1


def _sections(data: bytes) -> dict[str, tuple[int, int, int]]:
    """Section name -> (type, offset, size) of a 64-bit little-endian ELF file."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if not shoff or not shnum:
        return {}
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    names = data[strtab[4]:strtab[4] + strtab[5]]
    out = {}
    for h in headers:
        name = names[h[0]:names.index(b"\0", h[0])].decode(errors="replace")
        out[name] = (h[1], h[4], h[5])
    return out


def _loads_aligned(data: bytes) -> bool:
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, _filesz, _memsz, p_align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and (p_vaddr - p_offset) % max(p_align, PAGE) % PAGE:  # PT_LOAD
            return False
    return True


def _has_origin_rpath(data: bytes, sections: dict[str, tuple[int, int, int]]) -> bool:
    if ".dynamic" not in sections or ".dynstr" not in sections:
        return False
    _t, dyn_off, dyn_size = sections[".dynamic"]
    _t, str_off, str_size = sections[".dynstr"]
    dynstr = data[str_off:str_off + str_size]
    for i in range(0, dyn_size, 16):
        tag, val = struct.unpack_from("<qQ", data, dyn_off + i)
        if tag == 0:
            break
        if tag in (15, 29) and b"$ORIGIN" in dynstr[val:dynstr.index(b"\0", val)]:  # DT_RPATH, DT_RUNPATH
            return True
    return False


def strippable(path: Path, dest: str) -> bool:
    if any(part.endswith(".libs") for part in Path(dest).parts[:-1]):
        return False
    with path.open("rb") as f:
        head = f.read(64)
    if not _elf64_le(head):
        return False
    data = path.read_bytes()
    sections = _sections(data)
    return ".symtab" in sections and not _has_origin_rpath(data, sections)


def strip_binaries(binaries: list, cache: Path, strip: str = "strip") -> list:
    """The TOC with strippable Linux binaries replaced by stripped copies (unchanged elsewhere)."""
    if not sys.platform.startswith("linux") or shutil.which(strip) is None:
        return binaries
    cache.mkdir(parents=True, exist_ok=True)
    out, saved, count = [], 0, 0
    for dest, src, kind in binaries:
        path = Path(src)
        if kind not in ("BINARY", "EXTENSION") or not path.is_file() or not strippable(path, dest):
            out.append((dest, src, kind))
            continue
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        target = cache / key / path.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            proc = subprocess.run([strip, "--strip-unneeded", "-o", str(tmp), str(path)], capture_output=True)
            if proc.returncode != 0 or not _loads_aligned(tmp.read_bytes()):
                tmp.unlink(missing_ok=True)
                out.append((dest, src, kind))
                continue
            os.chmod(tmp, st.st_mode)
            tmp.replace(target)
        saved += st.st_size - target.stat().st_size
        count += 1
        out.append((dest, str(target), kind))
    print(f"slim: stripped {count} native libraries, {saved / 2**20:.0f} MiB less")
    return out
