"""The peer for GET /: a plain Flask visit counter that connects to PostgreSQL on every request.

Written as the Flask + PostgreSQL tutorials write it (and as this project's seed did): open a connection
in the view, bump a counter row, close, answer with the number. No pool, no cache, no middleware. The
bench creates its table (`bench_visits`, one row) and grants it to the app's role.
"""

import os

import psycopg
from flask import Flask

app = Flask(__name__)
application = app  # gunicorn's default name, as for bench.bare_wsgi


@app.get("/health")
def health():
    return "ok\n"


@app.get("/")
def home():
    conn = psycopg.connect(os.environ["DATABASE_URL"], application_name="flask-counter")
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE bench_visits SET visits = visits + 1 WHERE id = 1 RETURNING visits")
            (visits,) = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    return f"<!doctype html><title>Visits</title><p>{visits} visits so far.</p>\n"
