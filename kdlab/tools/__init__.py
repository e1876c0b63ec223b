"""The course's tooling: running every notebook, and publishing them as a book.

    run   `python -m kdlab.tools.run` (behind `make run`): papermill over the notebooks
    book  `python -m kdlab.tools.book` (behind `make book`): the Jupyter Book
"""
