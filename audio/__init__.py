"""Text to speech: Vietnamese normalisation, TTS engines, loudness, encoding and cache."""
