"""The sync core of Zoufang: ops, hybrid logical clocks, merge rules, cursors, the Store
protocol.

Pure standard-library Python: the Flask server and the tests drive it, nothing here does I/O
beyond the Store it is handed.
"""
