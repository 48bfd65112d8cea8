#!/bin/sh
# Entrypoint of the universal image (seed 000, "Entry strategy"): one image, two modes, chosen by how it is run.
#
#   no arguments, or exactly the default CMD `start-notebook.sh`
#       -> workbench mode: the base image's JupyterLab launcher, unchanged.
#   any other arguments
#       -> runtime mode: the arguments are the command. It replaces this shell (exec), so it is PID 1, receives the
#          container's signals directly and its exit status is the container's exit status.
#
# The Dockerfile sets CMD ["start-notebook.sh"], so a plain `docker run image` reaches this script with that one
# argument, never with none; both spellings must mean "workbench". Kubernetes `args:` arrive here as "$@", while
# `command:` bypasses this script entirely, which is also runtime mode.
set -eu

if [ "$#" -eq 0 ] || { [ "$#" -eq 1 ] && [ "$1" = "start-notebook.sh" ]; }; then
    exec start-notebook.sh
fi

exec "$@"
