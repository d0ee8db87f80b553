"""Media from untrusted sources, checked on local disk: spooled, sniffed, probed and thumbnailed.

`LocalMediaWorkshop` implements the `domain.ports.MediaWorkshop` port: Pillow for images (in
threads), the ffmpeg binary of `imageio-ffmpeg` for videos (in bounded subprocesses).
"""

from infrastructure.media.workshop import LocalMediaWorkshop, SpooledFile

__all__ = ["LocalMediaWorkshop", "SpooledFile"]
