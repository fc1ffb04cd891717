"""User interfaces: the `dancesearch` command line and the Streamlit web app (the top layer)."""
