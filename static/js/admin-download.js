// A form that answers with a download leaves the page as it was: say that the download started and, when the
// form names a page (data-then), go back to it, where the server's message confirms the recorded export.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-download]");
  if (!form) return;
  const status = document.getElementById(form.dataset.status);
  if (status) status.textContent = form.dataset.download;
  if (form.dataset.then) setTimeout(() => window.location.assign(form.dataset.then), 1500);
});
