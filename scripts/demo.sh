#!/usr/bin/env bash
# The main job: set up, build, and generate a story from the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model=${1:-../shared/models/stories260K.gguf}
./build/bin/nibble generate "$model" --target cpu --prompt "Once upon a time" -n 96
