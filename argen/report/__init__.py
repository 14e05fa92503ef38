"""The pipeline's report: one Markdown file and a self-contained HTML page a researcher reads top to bottom."""
