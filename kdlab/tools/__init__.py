"""The course's tooling: running every notebook, and publishing them as a book.

    run   `python -m kdlab.tools.run` (behind `make run`): papermill over the notebooks
    book  `python -m kdlab.tools.book` (behind `make book`): the Jupyter Book
    compare  `python -m kdlab.tools.compare RUN` (behind `make compare`): which numbers of a
          run differ from the committed notebooks'
"""
