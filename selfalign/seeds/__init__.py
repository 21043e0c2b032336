"""Stage ``seeds``: harvest real functions with docstrings from a source corpus.

Files are read from a source (the interpreter's standard library, a directory,
a JSONL/Parquet file or a streamed Hugging Face dataset), functions with
docstrings are extracted with tree-sitter, filtered cheapest first (shape,
docstring, deny-listed imports, exact duplicates, benchmark overlap), type
checked with a pool of pyright processes, and near-deduplicated with MinHash.
"""
