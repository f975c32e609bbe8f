"""The colorist's studio: `remaster studio FILM`, a local web page over the library (issue 21).

A client of the library beside the CLI: `film` reads frames and shots, `project` keeps the
project folder (keyframes as `--keyframes` reads them, and `project.json`), `engine` runs the
networks and the renders, `server` is the local HTTP server with its security, `command` the
`remaster studio` command. The page (`assets/`) is plain HTML, CSS and JavaScript shipped in the
package: nothing is fetched at run time.
"""
