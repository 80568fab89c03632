//! asyncio's tasks as the renderers show them: a tree per event loop of who awaits whom, as
//! `python -m asyncio pstree` draws it (each task, its coroutines outermost first, then the
//! tasks the innermost one awaits), and one summary row per task for the table formats.

use std::collections::{HashMap, HashSet};

use crate::report::{AsyncioLoopReport, TaskFrameReport, TaskReport};

/// The title of a loop's block: `asyncio event loop in thread 1234 (7 tasks)`.
pub fn loop_title(event_loop: &AsyncioLoopReport, several_interpreters: bool) -> String {
    let thread = match event_loop.thread {
        Some(tid) => format!("in thread {tid}"),
        None => "run by no thread".to_string(),
    };
    let interpreter = match (several_interpreters, event_loop.interpreter) {
        (true, Some(0)) => " of the main interpreter".to_string(),
        (true, Some(id)) => format!(" of interpreter {id}"),
        _ => String::new(),
    };
    let count = event_loop.tasks.len();
    let plural = if count == 1 { "" } else { "s" };
    format!("asyncio event loop {thread}{interpreter} ({count} task{plural})")
}

/// `(T) name [state, waiting on asyncio.Lock]`.
pub fn task_label(task: &TaskReport) -> String {
    let mut notes = Vec::new();
    if let Some(state) = task.state.as_deref().filter(|s| *s != "pending") {
        notes.push(state.to_string());
    }
    if let Some(on) = &task.waiting_on {
        notes.push(format!("waiting on {on}"));
    }
    if notes.is_empty() {
        format!("(T) {}", task.name)
    } else {
        format!("(T) {} [{}]", task.name, notes.join(", "))
    }
}

/// `function file.py:12` (the qualname when known).
pub fn coroutine_label(frame: &TaskFrameReport) -> String {
    let function = frame.qualname.as_deref().unwrap_or(&frame.function);
    match frame.line {
        Some(line) => format!("{function} {}:{line}", frame.file),
        None => format!("{function} {}", frame.file),
    }
}

/// The innermost coroutine, shortly: `sleep (tasks.py:665)`.
pub fn innermost(task: &TaskReport) -> String {
    let Some(frame) = task.stack.first() else {
        return String::new();
    };
    let function = frame.qualname.as_deref().unwrap_or(&frame.function);
    let file = crate::report::file_name(&frame.file);
    match frame.line {
        Some(line) => format!("{function} ({file}:{line})"),
        None => format!("{function} ({file})"),
    }
}

struct Node {
    label: String,
    children: Vec<Node>,
}

/// The lines of a loop's tree: the tasks no other task awaits at the top, each task's
/// coroutines outermost first, the tasks it awaits under its innermost coroutine. A task
/// awaited twice (or in a cycle) is drawn once; later mentions say `(see above)`.
pub fn tree_lines(event_loop: &AsyncioLoopReport) -> Vec<String> {
    let tasks = &event_loop.tasks;
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (index, task) in tasks.iter().enumerate() {
        by_name.entry(task.name.as_str()).or_insert(index);
    }
    let awaited: HashSet<usize> = tasks
        .iter()
        .flat_map(|t| t.awaiting.iter())
        .filter_map(|name| by_name.get(name.as_str()).copied())
        .collect();
    let mut drawn = HashSet::new();
    let mut roots = Vec::new();
    let order = (0..tasks.len())
        .filter(|i| !awaited.contains(i))
        .chain(0..tasks.len());
    for index in order {
        if !drawn.contains(&index) {
            roots.push(task_node(tasks, &by_name, index, &mut drawn));
        }
    }
    let mut lines = Vec::new();
    draw(&roots, "", &mut lines);
    lines
}

fn task_node(
    tasks: &[TaskReport],
    by_name: &HashMap<&str, usize>,
    index: usize,
    drawn: &mut HashSet<usize>,
) -> Node {
    let Some(task) = tasks.get(index) else {
        return Node {
            label: String::new(),
            children: Vec::new(),
        };
    };
    if !drawn.insert(index) {
        return Node {
            label: format!("(T) {} (see above)", task.name),
            children: Vec::new(),
        };
    }
    let mut children: Vec<Node> = task
        .awaiting
        .iter()
        .map(|name| match by_name.get(name.as_str()) {
            Some(&child) => task_node(tasks, by_name, child, drawn),
            None => Node {
                label: format!("(T) {name}"),
                children: Vec::new(),
            },
        })
        .collect();
    // Coroutines outermost first, each the only child of the one awaiting it.
    for frame in &task.stack {
        children = vec![Node {
            label: coroutine_label(frame),
            children,
        }];
    }
    Node {
        label: task_label(task),
        children,
    }
}

/// Draw nodes with `├──`/`└──` connectors, iteratively (a deep chain must not recurse deeply).
fn draw(nodes: &[Node], prefix: &str, lines: &mut Vec<String>) {
    // (node, its prefix, whether it is the last of its siblings)
    let mut pending: Vec<(&Node, String, bool)> = nodes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, n)| (n, prefix.to_string(), i + 1 == nodes.len()))
        .collect();
    while let Some((node, prefix, last)) = pending.pop() {
        let (branch, indent) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        lines.push(format!("{prefix}{branch}{}", node.label));
        let child_prefix = format!("{prefix}{indent}");
        let count = node.children.len();
        for (i, child) in node.children.iter().enumerate().rev() {
            pending.push((child, child_prefix.clone(), i + 1 == count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, awaiting: &[&str]) -> TaskReport {
        TaskReport {
            name: name.into(),
            state: Some("pending".into()),
            stack: vec![TaskFrameReport {
                function: format!("run_{name}").into(),
                qualname: None,
                file: "app.py".into(),
                line: Some(3),
            }],
            awaiting: awaiting.iter().map(|a| a.to_string()).collect(),
            waiting_on: None,
        }
    }

    #[test]
    fn tree_shows_who_awaits_whom_and_survives_cycles() {
        let event_loop = AsyncioLoopReport {
            thread: Some(7),
            interpreter: Some(0),
            tasks: vec![
                task("a", &["b"]),
                task("b", &[]),
                task("x", &["y"]),
                task("y", &["x"]),
            ],
        };
        assert_eq!(
            tree_lines(&event_loop),
            [
                "├── (T) a",
                "│   └── run_a app.py:3",
                "│       └── (T) b",
                "│           └── run_b app.py:3",
                "└── (T) x",
                "    └── run_x app.py:3",
                "        └── (T) y",
                "            └── run_y app.py:3",
                "                └── (T) x (see above)",
            ]
        );
    }
}
