"""`make bench`: bench/run.py is the entry point; see its docstring."""
