// Live broadcast page, microphone: runs on the audio thread; turns the microphone into 20 ms frames of
// 16-bit PCM (what the controller's WebSocket takes, see docs/live.md) and reports the level.
"use strict";

const FRAME = 960; // 20 ms at 48 kHz

class PcmFramer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Int16Array(FRAME);
    this.filled = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i += 1) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.peak = Math.max(this.peak, Math.abs(s));
      this.buffer[this.filled] = s < 0 ? s * 0x8000 : s * 0x7fff;
      this.filled += 1;
      if (this.filled === FRAME) {
        this.port.postMessage({ pcm: this.buffer.buffer, peak: this.peak }, [this.buffer.buffer]);
        this.buffer = new Int16Array(FRAME);
        this.filled = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-framer", PcmFramer);
