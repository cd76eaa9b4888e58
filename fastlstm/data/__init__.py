"""Real time series shipped with fastlstm (see README.md here)."""
