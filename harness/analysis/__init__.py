"""Pure analysis: pandas frames in, tidy summary rows or frames out. No file or network I/O."""
