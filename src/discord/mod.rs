//! The Discord adapter (serenity): the only code that knows Discord.
