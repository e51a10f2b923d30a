#!/usr/bin/env bash
# Install the app's packages and open it on the embedded defaults (bundled model, local index in .chroma/).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt
exec python -m streamlit run app.py --server.address 127.0.0.1 --server.headless true --browser.gatherUsageStats false --client.toolbarMode minimal "$@"
