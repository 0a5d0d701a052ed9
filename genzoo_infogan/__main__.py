"""``python -m genzoo_infogan ...`` is the ``genzoo`` command (``torchrun ... -m genzoo_infogan run``)."""

from .cli import main

if __name__ == "__main__":
    main()
