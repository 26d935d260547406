"""The front door of a small business on Telegram: wiring, configuration and domain rules."""
