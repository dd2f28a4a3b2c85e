"""`python -m seqrl ...` is the `seqrl` command (what `torchrun ... -m seqrl train ...` runs)."""

from seqrl.cli import main

if __name__ == "__main__":
    main()
