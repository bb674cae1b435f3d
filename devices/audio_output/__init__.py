"""Speaker outputs behind one interface: aplay or mpv on ALSA for real boards, a file sink for demos and tests.

Every method of an output blocks (decoding, spawning, writing) and is meant to be called from a worker
thread, never from the event loop. The modules: ``output`` (the interface), ``playback`` (the sample
format, a sound in progress, a stream connection), ``relay`` (relay windows on any output), ``decode``
(media to WAV), ``file_sink`` and ``alsa`` (the two outputs). Import from here.
"""

from __future__ import annotations

from devices.audio_output.alsa import AlsaOutput, AlsaSettings
from devices.audio_output.decode import decode_command, decode_to_wav, is_ogg_opus
from devices.audio_output.file_sink import STREAM_LEAD_S, FileSink
from devices.audio_output.output import AudioOutput
from devices.audio_output.playback import SINK_CHANNELS, SINK_RATE, SINK_WIDTH, OutputError, Playback, StreamPlayer
from devices.audio_output.relay import RELAY_BACKOFF_S, relay_input_args

__all__ = [
    "RELAY_BACKOFF_S",
    "SINK_CHANNELS",
    "SINK_RATE",
    "SINK_WIDTH",
    "STREAM_LEAD_S",
    "AlsaOutput",
    "AlsaSettings",
    "AudioOutput",
    "FileSink",
    "OutputError",
    "Playback",
    "StreamPlayer",
    "decode_command",
    "decode_to_wav",
    "is_ogg_opus",
    "relay_input_args",
]
