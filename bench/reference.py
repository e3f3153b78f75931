"""The benchmark's reference: a minimal Flask app that returns a fixed small JSON object."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def hello():
    return jsonify({"status": "ok", "service": "reference"})
