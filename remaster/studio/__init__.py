"""The colorist's studio: `remaster studio FILM`, a local web page over the library (issue 21).

A client of the library beside the CLI: `film` reads frames and shots, `project` keeps the
project folder (keyframes as `--keyframes` reads them, and `project.json`), `engine` runs the
networks, `reference` matches and registers a dropped reference as `--keyframes` does, `jobs`
runs the carry's preview and the resumable render through the pipeline, `server` is the local
HTTP server with its security, `command` the `remaster studio` command. The page (`assets/`) is
plain HTML, CSS and JavaScript shipped in the package: nothing is fetched at run time.

Why the standard library's `ThreadingHTTPServer` and a page of our own (issue 21, item 4), measured
on the 2-core development machine (start: from the interpreter's launch to the first answered
request, a one-route app, best of 3; weight: installed size of what the choice adds):

    stdlib http.server + own page   0.09 s   nothing added
    Starlette + uvicorn + own page  0.15 s   ~4 MB, 5 packages (starlette, uvicorn, anyio, h11, idna)
    Gradio 6.31                     2.7 s    ~350 MB, 53 packages (FastAPI, pandas, pydantic, ...)

Offline: ours and Starlette fetch nothing; Gradio reports analytics and checks its version at
api.gradio.app unless GRADIO_ANALYTICS_ENABLED=False. Clicks and strokes: a canvas of our own
gives every pointer event in the frame's pixels; Gradio's Image reports one click per event round
trip and its sketchpad returns painted layers, not strokes, so precise tools mean a custom
component and a JavaScript build. Tested in a real browser: all three, but ours is a plain DOM.
The page needs no push channel (render progress is polled), so an ASGI stack would add a
dependency without adding anything the studio uses; the security checks (token, Host, Origin,
fixed routes, body caps) are the same few lines either way, in `server.py`.
"""
