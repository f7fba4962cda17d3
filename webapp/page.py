"""The Gradio page: the model; a video (uploaded, or the demo's sample) and what the analysis found; the Live tab:
the browser's camera, analysed as it comes."""
import gradio as gr

INTRO = """# S2D: the emotions of the faces in a video
Upload a video: every face is found and tracked, and the model tells which emotion each face shows over time
(windows of a few seconds). The analysis runs on this machine; one video at a time, others wait in line.
The **Live** tab analyses your camera as it films: frames stay in this machine's memory, nothing is stored."""
LIVE_HELP = """Press **Start** and allow the camera: each face's emotion appears once the face was seen for a whole
window, and is updated as fast as the model goes (the newest window of each face is classified; older ones
waiting are dropped, so the reading never lags behind). **Stop** ends the live view."""
LIVE_FRAME_SECONDS = 0.1  # how often the browser sends a camera frame
# the camera component's own buttons, pressed by Start and Stop (Start first grants the page the camera)
CAMERA_BUTTON = "(text) => [...document.querySelectorAll('#camera button')].find(b => b.innerText.trim() === text)"
START_CAMERA = f"""async () => {{
    const button = {CAMERA_BUTTON};
    button('Click to Access Webcam')?.click();
    for (let i = 0; i < 100 && !button('Record') && !button('Stop'); i++) await new Promise(r => setTimeout(r, 100));
    button('Record')?.click();
}}"""
STOP_CAMERA = f"() => {{ ({CAMERA_BUTTON})('Stop')?.click(); }}"


def build_page(analyses, live, default_label, sample_video, sample_hint, keep_hours=24.0):
    """`analyses`: a webapp.analysis.VideoAnalyses; `live`: a webapp.live.LiveSessions; `sample_video`: a video to
    offer, or None and `sample_hint` says how to make it. Gradio deletes the files it holds (uploads, files it
    served) once they are `keep_hours` old, checking every hour at most."""

    def analyze(video, label, progress=gr.Progress()):
        return analyses.analyze(video, label, progress)

    def live_frame(image, label, request: gr.Request):
        return tuple(gr.skip() if output is None else output
                     for output in live.frame(image, label, request.session_hash))

    def live_start(request: gr.Request):
        return live.start(request.session_hash)

    def live_stop(request: gr.Request):
        return live.stop(request.session_hash)

    age = round(3600 * keep_hours)
    with gr.Blocks(title="S2D video emotion timeline", fill_width=True, delete_cache=(min(age, 3600), age)) as page:
        gr.Markdown(INTRO)
        labels = list(analyses.models)
        with gr.Row():
            model = gr.Dropdown(labels, value=default_label, label="model", interactive=len(labels) > 1)
            description = gr.Markdown(analyses.describe(default_label), elem_id="model")
        model.change(analyses.describe, model, description)
        with gr.Tab("Video file", elem_id="file-tab"):
            with gr.Row():
                with gr.Column():
                    # a file, not gr.Video: the pipeline reads any format FFmpeg does, browsers play far fewer
                    video = gr.File(label="video (any format FFmpeg reads)", file_types=["video"], type="filepath",
                                    elem_id="video")
                    if sample_video:
                        sample = gr.Button(f"Use the sample video ({sample_video})", size="sm")
                        sample.click(lambda: sample_video, None, video)
                    else:
                        gr.Markdown(sample_hint)
                with gr.Column():
                    run = gr.Button("Analyse", variant="primary", elem_id="analyse")
                    status = gr.Markdown(elem_id="status")
            timeline = gr.Image(label="emotion timeline, one panel per face track", type="filepath",
                                interactive=False, elem_id="timeline")
            table = gr.Dataframe(label="face tracks: dominant emotion and share of windows per class",
                                 interactive=False, elem_id="tracks")
            with gr.Row():
                annotated = gr.Video(label="annotated video", interactive=False, height=360, elem_id="annotated")
                downloads = gr.File(label="predictions.csv and summary.json", file_count="multiple",
                                    interactive=False, elem_id="downloads")
            run.click(analyze, [video, model], [status, timeline, table, annotated, downloads], concurrency_limit=1,
                      show_progress_on=timeline)
        with gr.Tab("Live", elem_id="live-tab"):
            gr.Markdown(LIVE_HELP)
            with gr.Row():
                with gr.Column(scale=2):
                    camera = gr.Image(label="camera", sources=["webcam"], streaming=True, type="numpy",
                                      elem_id="camera")
                    with gr.Row():
                        start = gr.Button("Start", variant="primary", elem_id="live-start")
                        stop = gr.Button("Stop", variant="stop", elem_id="live-stop")
                with gr.Column(scale=3):
                    live_status = gr.Markdown(elem_id="live-status")
                    faces = gr.Dataframe(label="each face now", interactive=False, elem_id="live-faces")
                    rolling = gr.Image(label="the last minute, one panel per face", type="numpy",
                                       interactive=False, elem_id="live-timeline")
            camera.stream(live_frame, [camera, model], [live_status, faces, rolling], stream_every=LIVE_FRAME_SECONDS,
                          concurrency_limit=None, show_progress="hidden")
            start.click(live_start, None, live_status, js=START_CAMERA, show_progress="hidden")
            stop.click(live_stop, None, live_status, js=STOP_CAMERA, show_progress="hidden")
    return page.queue(default_concurrency_limit=1)
