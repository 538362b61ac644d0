"""Third-party notices for a PyInstaller build, from the installed distributions' metadata.

Called by build.spec after the bundle is collected:

    notices.write(dist_dir, analysis)

It writes, beside the executable:
  * THIRD-PARTY-NOTICES.txt: every distribution with files in the bundle (name, version, licence as
    declared in its metadata, home page), the native libraries that came from the Python installation
    or the system rather than from a wheel, and the GPL notes for ffmpeg, espeak-ng and Rubber Band;
  * licenses/<name>-<version>/: the licence files each distribution ships in its .dist-info.

Also runnable on its own, to see which distributions of the current environment would be listed:
    python packaging/notices.py  [DIST_DIR]
"""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Licences some distributions do not declare in their metadata, as published in their repositories.
UNDECLARED = {
    "espeakng-loader": "MIT (the loader; not declared in its metadata). It bundles espeak-ng: GPL-3.0-or-later",
    "huey": "MIT (not declared in its metadata)",
}

GPL_NOTES = """\
GPL components
--------------
This bundle contains three components under the GNU General Public License:

* ffmpeg, the static build distributed by imageio-ffmpeg {imageio_ffmpeg_version}
  (file _internal/imageio_ffmpeg/binaries/{ffmpeg}), {ffmpeg_version}.
  It is configured with --enable-gpl --enable-version3, so it is covered by GPL-3.0-or-later (the full
  configuration and its libraries are printed by `ffmpeg -version`). Its source code: https://ffmpeg.org
  (git tag/commit in the version above). dubstudio runs it as a separate program (a child process).

* espeak-ng {espeak_version}, the library and voice data distributed by espeakng-loader {espeak_loader_version}
  (files _internal/espeakng_loader/). espeak-ng is GPL-3.0-or-later. Its source code:
  https://github.com/espeak-ng/espeak-ng. dubstudio loads it with ctypes in a helper process.

* the Rubber Band Library (GPL-2.0-or-later), built into the extension module of pylibrb {pylibrb_version}
  (files _internal/pylibrb/; pylibrb's own bindings declare GPLv2). dubstudio imports it in process to
  time-stretch speech. Source code: https://breakfastquay.com/rubberband/ and
  https://github.com/pawel-glomski/pylibrb.

dubstudio itself is GPL-3.0-or-later, so the bundle as a whole is distributed under GPL-3.0-or-later.
Whoever distributes this bundle must also offer the complete corresponding source code of these GPL
parts (for ffmpeg, with the libraries built into it; for pylibrb, with Rubber Band; and of dubstudio)
under the GPL's terms: ship it alongside, or include a written offer valid for three years, or point to
the same source at the same place for as long as the bundle is offered.

LGPL components (soxr, libsndfile) are shared libraries in their own files under _internal/ and can
be replaced by the user with compatible builds.
"""

LICENSE_FILE = re.compile(r"(^|/)(licen[cs]e|copying|notice|authors|copyright)[^/]*$", re.IGNORECASE)


def _licence(dist: md.Distribution) -> str:
    meta = dist.metadata
    expr = meta.get("License-Expression")
    if expr:
        return expr.strip()
    name = _norm(meta["Name"])
    if name in UNDECLARED:
        return UNDECLARED[name]
    text = (meta.get("License") or "").strip()
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]
    if text and len(text) <= 80 and "\n" not in text:
        return text + (f" ({', '.join(classifiers)})" if classifiers and text not in classifiers else "")
    if classifiers:
        return ", ".join(classifiers)
    if text:  # a whole licence pasted into the field: name its first line
        return text.splitlines()[0][:80] + " ... (full text in licenses/)"
    return "not declared in its metadata (see licenses/, or the project's home page)"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _home(dist: md.Distribution) -> str:
    meta = dist.metadata
    if meta.get("Home-page"):
        return str(meta["Home-page"])
    for url in meta.get_all("Project-URL") or []:
        label, _, link = url.partition(",")
        if label.strip().lower() in {"homepage", "home", "source", "repository", "source code", "github"}:
            return link.strip()
    urls = meta.get_all("Project-URL") or []
    return urls[0].partition(",")[2].strip() if urls else ""


def _top_levels(dist: md.Distribution) -> set[str]:
    """First path components of the distribution's installed files: packages, modules, *.libs folders."""
    out: set[str] = set()
    for f in dist.files or []:
        parts = Path(str(f)).parts
        if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        first = parts[0]
        if len(parts) == 1:  # a module or an extension at the top level: six.py, _cffi_backend.cpython-311-...so
            first = first.split(".")[0]
        out.add(first)
    return out


def bundled_distributions(names: Iterable[str]) -> list[md.Distribution]:
    """Distributions owning any of the bundle's top-level names (modules, packages, data folders)."""
    wanted = set(names)
    found: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        key = _norm(dist.metadata["Name"] or "")
        if key and key not in found and _top_levels(dist) & wanted:
            found[key] = dist
    return sorted(found.values(), key=lambda d: _norm(d.metadata["Name"]))


def _analysis_names(analysis: Any) -> tuple[set[str], list[str]]:
    """Top-level names in the bundle, and the shared libraries PyInstaller took from the Python
    installation or the system (they sit at the top of _internal/; a wheel's own stay in its folders)."""
    names: set[str] = set()
    for dest, _src, _kind in analysis.pure:
        names.add(dest.split(".")[0])
    outside: list[str] = []
    for dest, _src, kind in [*analysis.binaries, *analysis.datas]:
        parts = Path(dest).parts
        names.add(parts[0] if len(parts) > 1 else parts[0].split(".")[0])
        if kind == "BINARY" and len(parts) == 1:
            outside.append(dest)
    return names, sorted(outside)


def _ffmpeg_name() -> str:
    try:
        import imageio_ffmpeg

        return Path(imageio_ffmpeg.get_ffmpeg_exe()).name
    except Exception:
        return "ffmpeg"


def _ffmpeg_version() -> str:
    try:
        import subprocess

        import imageio_ffmpeg

        out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True,
                             text=True, timeout=30).stdout
        first = out.splitlines()[0]  # "ffmpeg version 7.0.2-static https://johnvansickle.com/ffmpeg/  Copyright ..."
        return first.split(" Copyright")[0].strip()
    except Exception:
        return "version not known"


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "?"


def _espeak_version() -> str:
    try:
        import espeakng_loader

        libs = Path(espeakng_loader.get_library_path()).parent.glob("libespeak-ng.so.*.*")
        return next((p.name.split(".so.")[1] for p in libs), "")
    except Exception:
        return ""


def render(dists: list[md.Distribution], outside: list[str]) -> str:
    py = sys.version.split()[0]
    lines = [
        "dubstudio: third-party notices",
        "==============================",
        "",
        "Generated at build time from the metadata of the Python distributions whose files are in this",
        "bundle. The licence column is what each distribution declares (License-Expression, License or",
        "its classifiers); the licence texts they ship are under licenses/<name>-<version>/.",
        "",
        f"Python {py}: PSF-2.0 (https://docs.python.org/3/license.html)",
        "",
        f"{'distribution':32} {'version':18} licence",
        f"{'-' * 32} {'-' * 18} {'-' * 40}",
    ]
    for d in dists:
        lines.append(f"{d.metadata['Name']:32} {d.version:18} {_licence(d)}")
        home = _home(d)
        if home:
            lines.append(f"{'':51}{home}")
    if outside:
        lines += ["", "Native libraries from the Python installation or the operating system",
                  "----------------------------------------------------------------------",
                  "(Python's own extension modules and the libraries they link, e.g. OpenSSL: Apache-2.0,",
                  "SQLite: public domain, zlib: Zlib, libffi: MIT, bzip2: bzip2 licence, xz/liblzma: 0BSD,",
                  "libuuid: BSD-3-Clause, libmvec (glibc): LGPL-2.1-or-later, libstdc++/libgcc/libgomp:",
                  "GPL-3.0 with the GCC Runtime Library Exception.)", ""]
        lines += [f"  {dest}" for dest in outside]
    espeak = _espeak_version()
    lines += ["", GPL_NOTES.format(ffmpeg=_ffmpeg_name(), ffmpeg_version=_ffmpeg_version(),
                                   imageio_ffmpeg_version=_version("imageio-ffmpeg"),
                                   espeak_version=espeak or "(version not known)",
                                   espeak_loader_version=_version("espeakng-loader"),
                                   pylibrb_version=_version("pylibrb"))]
    return "\n".join(lines) + "\n"


def copy_licence_files(dists: list[md.Distribution], folder: Path) -> int:
    count = 0
    for d in dists:
        target = folder / f"{_norm(d.metadata['Name'])}-{d.version}"
        for f in d.files or []:
            rel = str(f)
            if ".dist-info/" not in rel.replace("\\", "/") or not LICENSE_FILE.search(rel.split(".dist-info/", 1)[1]):
                continue
            src = Path(str(d.locate_file(f)))
            if src.is_file():
                dest = target / rel.split(".dist-info/", 1)[1]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                count += 1
    return count


def write(dist_dir: Path, analysis: Any) -> Path:
    names, outside = _analysis_names(analysis)
    dists = bundled_distributions(names)
    notices = dist_dir / "THIRD-PARTY-NOTICES.txt"
    notices.write_text(render(dists, outside), encoding="utf-8")
    licenses = dist_dir / "licenses"
    shutil.rmtree(licenses, ignore_errors=True)
    copied = copy_licence_files(dists, licenses)
    print(f"notices: {len(dists)} distributions, {copied} licence files -> {notices}")
    return notices


if __name__ == "__main__":
    every = sorted(md.distributions(), key=lambda d: _norm(d.metadata["Name"]))
    text = render(every, [])
    if len(sys.argv) > 1:
        Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
        (Path(sys.argv[1]) / "THIRD-PARTY-NOTICES.txt").write_text(text, encoding="utf-8")
    else:
        print(text)
