"""What a session keeps of what the pipeline says, and where: the session log of every
Final (``log``), the sources' audio beside it (``audio``), the marks on Finals that are
sound earwig knows came from elsewhere (``echo_filter``, ``played_back``), and the one
owner that runs them over the supervisor's messages (``keeper``). The session's readers
(``earwig sessions``, search, export, playback) read the same files."""
