import sys

from reference_app.cli import main

# uvicorn --workers spawns fresh interpreters that import this module as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
