// The task list: every task the receiver knows, refreshed every two seconds.
"use strict";
(() => {
  const body = document.querySelector("#tasks tbody");
  const status = document.getElementById("status");

  async function refresh() {
    try {
      const tasks = await api.get("/tasks");
      body.replaceChildren(...tasks.map(row));
      document.getElementById("empty").hidden = tasks.length > 0;
      status.textContent = `${tasks.length} tasks`;
    } catch (error) {
      status.textContent = `cannot list tasks: ${error.message}`;
    }
    setTimeout(refresh, 2000);
  }

  function row(task) {
    const tr = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `/tasks/${encodeURIComponent(task.taskId)}`;
    link.textContent = task.taskId;
    const cells = [link, String(task.totalLogs), new Date(task.lastSeen * 1000).toLocaleString()];
    for (const content of cells) {
      const td = document.createElement("td");
      td.append(content);
      tr.append(td);
    }
    return tr;
  }

  refresh();
})();
