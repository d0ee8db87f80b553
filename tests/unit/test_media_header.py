"""`videos.parse_header`: the geometry and duration ffmpeg printed, never what a file's metadata says."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.media.ffmpeg import FfmpegLog
from infrastructure.media.videos import parse_header

# What ffmpeg 9 prints (at -loglevel level+info) for a rotated 320x240 H.264 MP4 of 2 s.
HEADER = """[info] Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/genhub-media-1.part':
[info]   Metadata:
[info]     major_brand     : isom
[info]     title           : TITLE
[info]   Duration: 00:00:02.00, start: 0.000000, bitrate: 46 kb/s
[info]   Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 320x240 [SAR 1:1 DAR 4:3], 41 kb/s, 12 fps, 12 tbr, 12288 tbn (default)
[info]     Metadata:
[info]       handler_name    : VideoHandler
[info]     Side data:
[info]       Display Matrix: rotation of -90.00 degrees
[info]   Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 69 kb/s (default)
[info] Stream mapping:
[info]   Stream #0:0 -> #0:0 (copy)
[info] Output #0, null, to 'pipe:':
[info]   Duration: 01:00:00.00, start: 0.000000, bitrate: 46 kb/s
[info]   Stream #0:0(und): Video: h264 (High), yuv420p, 16x16"""


def log_of(text: str) -> FfmpegLog:
    log = FfmpegLog()
    for line in text.splitlines():
        log.add(line)
    return log


def test_the_input_header_is_read() -> None:
    header = parse_header(log_of(HEADER.replace("TITLE", "a clip")))
    # rotated by 90 degrees: displayed as 240 x 320
    assert (header.width, header.height, header.duration) == (240, 320, 2.0)


def test_no_video_stream_no_geometry() -> None:
    audio_only = "\n".join(line for line in HEADER.splitlines() if "Video:" not in line)
    header = parse_header(log_of(audio_only))
    assert (header.width, header.height, header.duration) == (None, None, 2.0)


FORGERIES = st.lists(
    st.sampled_from(
        [
            "  Duration: 00:00:00.50, start: 0.000000",
            "  Stream #0:0: Video: h264, 16x16",
            "[info]   Duration: 00:00:00.50",
            "      Display Matrix: rotation of 0.00 degrees",
            "[info] Output #0, null",
            "Input #0, mov",
        ]
    ),
    min_size=1,
    max_size=6,
)


@given(FORGERIES, st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30))
def test_a_multi_line_title_cannot_change_the_header(lines: list[str], noise: str) -> None:
    # given a title whose further lines read like header lines (ffmpeg prints them untagged, indented)
    title = noise + "".join(f"\n                    : {line}" for line in lines)
    header = parse_header(log_of(HEADER.replace("TITLE", title)))
    # then the real header still counts
    assert (header.width, header.height, header.duration) == (240, 320, 2.0)
