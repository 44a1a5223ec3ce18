// The action list's print button (a file of its own: the console's CSP runs no inline script).
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("print");
  if (button) button.addEventListener("click", () => window.print());
});
