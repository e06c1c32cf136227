"""Microphone channels of a meeting from the talkers' dry tracks.

IHM (individual headset): own speech, crosstalk from the other talkers (attenuated and
slightly delayed) and low coloured noise. SDM (single distant mic): a pyroomacoustics
shoebox room (image source method) with the talkers around a table and one table mic,
plus coloured noise.
"""
import numpy as np
import pyroomacoustics as pra
from scipy.signal import oaconvolve

SAMPLE_RATE = 16000
MAX_IMAGE_ORDER = 25  # caps the room simulation cost at high RT60
SDM_SPEECH_DB = -26.0


def colored_noise(n, slope, rng):
    """Unit-RMS noise with a 1/f^slope power spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=float)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (slope / 2), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _delayed(x, samples):
    return np.concatenate([np.zeros(samples, x.dtype), x[: len(x) - samples]])


def ihm_channels(tracks, levels_db, rng, cfg):
    """Headset channels (talkers x samples) and their parameters."""
    k = len(tracks)
    crosstalk = rng.uniform(*cfg.crosstalk_db, size=(k, k))
    delays = rng.integers(16, 97, size=(k, k))  # 1-6 ms
    snr = rng.uniform(*cfg.ihm_snr_db, size=k)
    slopes = rng.uniform(0.8, 1.5, size=k)
    out = np.empty_like(tracks)
    for i in range(k):
        mix = tracks[i].copy()
        for j in range(k):
            if j != i:
                mix += 10 ** (crosstalk[i, j] / 20) * _delayed(tracks[j], int(delays[i, j]))
        noise_rms = 10 ** ((levels_db[i] - snr[i]) / 20)
        out[i] = mix + noise_rms * colored_noise(len(mix), slopes[i], rng)
    info = {"snr_db": np.round(snr, 2).tolist(), "crosstalk_db": np.round(crosstalk, 2).tolist()}
    return out, info


def _room(rng, cfg, n_talkers):
    """A shoebox room, talkers around a 1.1 x 0.8 m table, one mic on the table."""
    dims = np.array([rng.uniform(5, 9), rng.uniform(4, 7), rng.uniform(2.6, 3.3)])
    rt60 = float(rng.uniform(*cfg.rt60_s))
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                       max_order=min(max_order, MAX_IMAGE_ORDER), air_absorption=False)
    centre = dims[:2] / 2 + rng.uniform(-0.5, 0.5, size=2)
    seats = [(-0.55, -0.4), (0.55, -0.4), (0.55, 0.4), (-0.55, 0.4), (0.0, 0.6), (0.0, -0.6)]
    for dx, dy in seats[:n_talkers]:
        room.add_source([centre[0] + dx * 1.3, centre[1] + dy * 1.4, rng.uniform(1.1, 1.3)])
    room.add_microphone([centre[0] + rng.uniform(-0.2, 0.2), centre[1] + rng.uniform(-0.2, 0.2), 0.75])
    room.compute_rir()
    return room, rt60, dims


def sdm_channel(tracks, active, rng, cfg):
    """The distant-mic signal and its parameters (RT60, SNR, each talker's direct-path delay).

    `active` marks the samples where anyone speaks; the SNR is measured over them.
    """
    room, rt60, dims = _room(rng, cfg, len(tracks))
    n = tracks.shape[1]
    mix = np.zeros(n)
    delays = []
    for i, track in enumerate(tracks):
        rir = np.asarray(room.rir[0][i])
        delays.append(int(np.argmax(np.abs(rir))) / SAMPLE_RATE)
        mix += oaconvolve(track, rir)[:n]
    speech_rms = np.sqrt(np.mean(mix[active] ** 2)) if active.any() else 1.0
    mix *= 10 ** (SDM_SPEECH_DB / 20) / speech_rms
    snr = float(rng.uniform(*cfg.sdm_snr_db))
    slope = float(rng.uniform(0.5, 1.8))
    mix += 10 ** ((SDM_SPEECH_DB - snr) / 20) * colored_noise(n, slope, rng)
    measured = float(np.median(room.measure_rt60()))
    info = {"rt60_s": round(rt60, 3), "rt60_measured_s": round(measured, 3), "snr_db": round(snr, 2), "noise_slope": round(slope, 2),
            "room_m": np.round(dims, 2).tolist(), "direct_delay_s": [round(d, 4) for d in delays]}
    return mix, info
