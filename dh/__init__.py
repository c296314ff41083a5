"The `dh` command: demo, frame codec, benchmarks and the SQLite worker."
