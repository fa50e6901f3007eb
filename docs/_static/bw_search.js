// Search from the files themselves (file://): the browser forbids fetching the result pages for their
// matching text, so show the titles only there; from a server (`python docs/site_tools.py serve`) the
// matching text is shown too.
if (window.location.protocol === "file:" && typeof DOCUMENTATION_OPTIONS !== "undefined") {
  DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false;
}
