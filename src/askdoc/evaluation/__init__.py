"""``askdoc eval``: Q&A files and BEIR folders (``data``) run through an Engine (``run``), scored
(``metrics``), reported as tables, JSON and Markdown (``report``), the refusal threshold fitted
(``calibrate``), and the command itself (``cli``)."""
