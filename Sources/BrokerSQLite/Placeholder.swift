// The SQLite share log lands here.
