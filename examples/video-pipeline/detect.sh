# detect: one frame -> the faces in it, found by OpenCV's Haar cascade face detector.
#
# A container job of watcher's `container` handler (the SCAR / OSCAR contract): the frame is
# $INPUT_FILE_PATH (s3://media/frames/<video request id>/frame-NNNN.jpg, written by split.sh).
# It writes, under $TMP_OUTPUT_DIR/<video request id>/:
#   frame-NNNN.json            the boxes: {"faces": [{"x", "y", "w", "h"}, ...], ...}
#   frame-NNNN.annotated.jpg   the frame with a green box around each face
# The route sets request_id_folder: false, so they land in s3://media/detections/<video request id>/,
# next to the other frames of the same video, where the summary finds them. Nothing is written
# under frames/: detect's outputs never trigger detect.
#
# Runs with /bin/sh in the opencv image (Debian's python3-opencv, cascades from opencv-data) or on
# the host (runtime: process) with a python3 that has OpenCV (PyPI's opencv-python-headless ships
# the cascades in cv2.data.haarcascades). Exit 65: the input is not an image (permanent).
set -eu
exec python3 - <<'PYTHON'
import json
import os
import re
import sys
import time
from pathlib import Path

import cv2

CASCADE = "haarcascade_frontalface_alt2.xml"
started = time.perf_counter()
key = os.environ["STORAGE_OBJECT_KEY"]
folder, _, name = key.rpartition("/")
video = re.sub(r"[^A-Za-z0-9._-]", "_", folder.rpartition("/")[2]).strip(".") or "unsorted"
stem = name.rsplit(".", 1)[0] or "frame"

places = [getattr(getattr(cv2, "data", None), "haarcascades", "")]
places += ["/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades"]
cascade = next((os.path.join(p, CASCADE) for p in places if p and os.path.isfile(os.path.join(p, CASCADE))), None)
if cascade is None:
    print(f"detect: no {CASCADE} in {places}", file=sys.stderr)
    sys.exit(69)

image = cv2.imread(os.environ["INPUT_FILE_PATH"])
if image is None:
    print(f"detect: {key} is not an image OpenCV can read", file=sys.stderr)
    sys.exit(65)
height, width = image.shape[:2]
gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
smallest = max(24, min(width, height) // 10)  # faces under a tenth of the frame are not looked for
found = cv2.CascadeClassifier(cascade).detectMultiScale(
    gray, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
)
faces = [{"x": int(x), "y": int(y), "w": int(w), "h": int(h)} for (x, y, w, h) in found]
for face in faces:
    corner = (face["x"] + face["w"], face["y"] + face["h"])
    cv2.rectangle(image, (face["x"], face["y"]), corner, (0, 255, 0), max(2, width // 160))

out = Path(os.environ["TMP_OUTPUT_DIR"]) / video
out.mkdir(parents=True, exist_ok=True)
cv2.imwrite(str(out / f"{stem}.annotated.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
result = {
    "source": f"s3://{os.environ['STORAGE_BUCKET']}/{key}",
    "video_request_id": video,
    "frame": name,
    "width": width,
    "height": height,
    "detector": f"OpenCV {cv2.__version__} Haar cascade {CASCADE}",
    "faces": faces,
    "detect_ms": round((time.perf_counter() - started) * 1000, 1),
}
(out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
boxes = " ".join(f"[{f['x']},{f['y']},{f['w']},{f['h']}]" for f in faces)
print(f"detect {name}: {len(faces)} face(s) {boxes}".rstrip())
PYTHON
