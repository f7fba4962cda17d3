"""Re-encoding of the pipeline's annotated.mp4 (MPEG-4 part 2, which browsers do not play) as H.264."""
import av


def to_h264(source, target):
    """Write `source` as an H.264 mp4 that Chromium, Firefox and Safari play, index first (faststart) so that
    playback starts before the whole file has arrived."""
    with av.open(str(source)) as reader, av.open(str(target), "w", options={"movflags": "+faststart"}) as writer:
        video = reader.streams.video[0]
        stream = writer.add_stream("libx264", rate=video.average_rate or 25)
        # yuv420p, the pixel format every browser decodes, needs an even width and height
        stream.width, stream.height = video.width // 2 * 2, video.height // 2 * 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for frame in reader.decode(video):
            writer.mux(stream.encode(frame.reformat(stream.width, stream.height, "yuv420p")))
        writer.mux(stream.encode())
