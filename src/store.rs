//! SQLite persistence: conversations, question log, feedback, audit.
