"""`python -m dubstudio` and the frozen executable's entry point."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from dubstudio.cli import main

    raise SystemExit(main())
