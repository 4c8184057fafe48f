// What both pages need to talk to the receiver. A token given once as
// #token=... in the address is kept for this tab (the receiver may require one).
"use strict";
const api = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) sessionStorage.setItem("kerutaToken", fromHash);
  const token = sessionStorage.getItem("kerutaToken");

  async function get(path) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch(`/api/v1${path}`, { headers });
    const body = await response.json();
    if (!response.ok) throw Object.assign(new Error(body.message || response.statusText), { status: response.status, code: body.code });
    return body;
  }

  return { get, token };
})();
