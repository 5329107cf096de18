//! Encrypted practice store (SQLCipher), migrations, scheduler, practice import.
