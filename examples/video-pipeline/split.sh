# split: one video -> its frames, then a _SUCCESS marker that lists them.
#
# A container job of watcher's `container` handler (the SCAR / OSCAR contract): the video is
# $INPUT_FILE_PATH; every file written to $TMP_OUTPUT_DIR is uploaded to
# s3://media/frames/$REQUEST_ID/ once this script exits 0. Runs with /bin/sh in the ffmpeg image
# (build_images.py) or on the host (runtime: process), where ffmpeg is the one on PATH or the binary
# PyPI's imageio-ffmpeg ships.
#
# FPS (the route's environment, default 2): frames kept per second of video.
# Exit 64: FPS is not a number; 65: the input is not a video ffmpeg can read. Both are listed in
# the route's permanent_exit_codes (a retry cannot help: the message goes to the dead-letter queue).
set -eu

fps="${FPS:-2}"
case "$fps" in
    '' | *[!0-9.]* | *.*.* | .* | *.) echo "FPS must be a number of frames per second, got '$fps'" >&2; exit 64 ;;
esac

if command -v ffmpeg > /dev/null 2>&1; then
    ffmpeg=ffmpeg
else
    ffmpeg=$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())') || {
        echo "no ffmpeg on PATH, and no python3 with imageio-ffmpeg" >&2
        exit 69
    }
fi

if ! errors=$("$ffmpeg" -hide_banner -loglevel error -nostdin -i "$INPUT_FILE_PATH" \
        -vf "fps=$fps" -q:v 3 "$TMP_OUTPUT_DIR/frame-%04d.jpg" 2>&1); then
    printf '%s\n' "$errors" >&2
    if printf '%s' "$errors" | grep -qiE 'invalid data|moov atom not found|could not find codec|does not contain any stream'; then
        echo "split: $STORAGE_OBJECT_KEY is not a video ffmpeg can read" >&2
        exit 65
    fi
    exit 1  # anything else (out of memory, a full disk...) may pass on a retry
fi

count=0
for frame in "$TMP_OUTPUT_DIR"/frame-*.jpg; do
    [ -e "$frame" ] && count=$((count + 1))
done
if [ "$count" -eq 0 ]; then
    echo "split: ffmpeg found no frame in $STORAGE_OBJECT_KEY" >&2
    exit 65
fi

# The marker: which frames make up this video (file names are frame-NNNN.jpg: nothing to escape).
{
    printf '{"request_id": "%s", "fps": %s, "count": %d, "frames": [' "$REQUEST_ID" "$fps" "$count"
    separator=""
    for frame in "$TMP_OUTPUT_DIR"/frame-*.jpg; do
        printf '%s"%s"' "$separator" "${frame##*/}"
        separator=", "
    done
    printf ']}\n'
} > "$TMP_OUTPUT_DIR/_SUCCESS"

echo "split $STORAGE_OBJECT_KEY: $count frames at $fps/s -> frames/$REQUEST_ID/"
