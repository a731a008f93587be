//! Key bindings as data: one table of (context, action, keys, help text) drives the dispatch in
//! the update function, the help screen and the footers, as gitui's key list and television's
//! keymaps do. The operator can rebind any action in `config.json` (`"keys": {"build": ["b"]}`);
//! the help shows the keys in force. A key with Ctrl never matches a binding without it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
use std::fmt;

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Context {
    /// Everywhere outside dialogs.
    Global,
    /// Every list: the browser, the batch list, a batch's entries, the help, the preview.
    Lists,
    /// The folder browser.
    Browser,
    /// The batch list.
    Batches,
    /// A batch's entries.
    Entries,
    /// The manifest preview.
    Preview,
    /// A batch's info screen.
    Info,
}

impl Context {
    /// The help screen's heading for it.
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Lists => "Moving",
            Context::Browser => "Browser",
            Context::Batches => "Batches",
            Context::Entries => "A batch's entries",
            Context::Preview => "Preview",
            Context::Info => "Batch info",
        }
    }
}

/// What a key does: the update function handles actions, never raw keys (dialogs and text
/// fields aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Quit (asks when there are unsaved changes or builds).
    Quit,
    /// The help screen.
    Help,
    /// Switch focus between the browser and the batches.
    SwitchFocus,
    /// Save the shipment file.
    Save,
    /// Start an empty batch.
    NewBatch,
    /// Add the marked files to the selected batch.
    AddMarked,
    /// Auto-pack the marked files.
    AutoPack,
    /// Preview the selected batch's manifest.
    Preview,
    /// Build the selected batch.
    Build,
    /// Build every batch not built.
    BuildAll,
    /// Switch the left pane between the browser and the build progress.
    ToggleProgress,
    /// Switch the left pane between the browser and the drives.
    ToggleDrives,
    /// Add a drive folder to the drive set.
    AddDrive,
    /// Switch the left pane between the browser and the deals.
    ToggleDeals,
    /// The selected batch's info.
    Info,
    /// Export deal commands.
    Export,
    /// Undo the last edit of the batches.
    Undo,
    /// Redo the last edit undone.
    Redo,
    /// Move down.
    Down,
    /// Move up.
    Up,
    /// Move a page down.
    PageDown,
    /// Move a page up.
    PageUp,
    /// First row.
    First,
    /// Last row.
    Last,
    /// Open a folder or a batch's entries.
    Open,
    /// Up to the parent folder, or back to the batch list.
    Back,
    /// Mark or unmark the entry and move down.
    Mark,
    /// Mark every entry shown (again: unmark).
    MarkAll,
    /// Filter the folder by name.
    Filter,
    /// Clear the filter.
    ClearFilter,
    /// Show or hide dot-entries.
    ToggleHidden,
    /// Sort by name.
    SortName,
    /// Sort by size.
    SortSize,
    /// Sort by file count.
    SortCount,
    /// Take files out of batches, or remove a batch.
    Remove,
    /// Cancel the selected batch's build.
    CancelBuild,
    /// Retry a failed batch (or take over a stale lock).
    Retry,
    /// Re-plan a batch whose files changed.
    Replan,
    /// Dry-run the previewed batch.
    DryRun,
    /// Close the preview, or cancel its dry run.
    Close,
    /// Copy the selected value.
    Copy,
}

/// Every action with its config name, context, default keys and help text, in help order.
const DEFAULTS: &[(Action, &str, Context, &[&str], &str)] = &[
    (
        Action::SwitchFocus,
        "switch_focus",
        Context::Global,
        &["Tab", "BackTab"],
        "switch between the browser and the batches",
    ),
    (Action::Help, "help", Context::Global, &["?", "F1"], "this help"),
    (Action::Quit, "quit", Context::Global, &["q", "Ctrl-c"], "quit (asks when there are unsaved changes or builds)"),
    (Action::Save, "save", Context::Global, &["s"], "save the shipment file (atomic)"),
    (Action::NewBatch, "new_batch", Context::Global, &["n"], "start a new empty batch"),
    (Action::AddMarked, "add_marked", Context::Global, &["a"], "add the marked files to the selected batch"),
    (
        Action::AutoPack,
        "auto_pack",
        Context::Global,
        &["p"],
        "auto-pack the marked files into new batches (the `carload plan` planner)",
    ),
    (Action::Preview, "preview", Context::Global, &["v"], "preview the selected batch's manifest"),
    (Action::Build, "build", Context::Global, &["b"], "build the selected batch (into --out; saves first)"),
    (Action::BuildAll, "build_all", Context::Global, &["B"], "build every batch not built (into --out; saves first)"),
    (
        Action::ToggleProgress,
        "toggle_progress",
        Context::Global,
        &["w"],
        "switch the left pane between the browser and build progress + log",
    ),
    (
        Action::ToggleDrives,
        "toggle_drives",
        Context::Global,
        &["D"],
        "switch the left pane between the browser and the drives (fill, built, FULL)",
    ),
    (
        Action::ToggleDeals,
        "toggle_deals",
        Context::Global,
        &["L"],
        "switch the left pane between the browser and the deals (fill, batches built)",
    ),
    (
        Action::AddDrive,
        "add_drive",
        Context::Global,
        &["+"],
        "add a drive folder to the set (running builds place the next batches on it)",
    ),
    (Action::Info, "info", Context::Global, &["i"], "the selected batch's CIDs, sizes and deal commands"),
    (
        Action::Export,
        "export",
        Context::Global,
        &["e"],
        "export deal commands (Boost, Curio, Lotus, CSV) for the built batches",
    ),
    (
        Action::Undo,
        "undo",
        Context::Global,
        &["u"],
        "undo the last edit of the batches (pack, add, remove, re-plan…; 100 levels)",
    ),
    (Action::Redo, "redo", Context::Global, &["U", "Ctrl-r"], "redo the last edit undone"),
    (Action::Down, "down", Context::Lists, &["Down", "j"], "move down"),
    (Action::Up, "up", Context::Lists, &["Up", "k"], "move up"),
    (Action::PageDown, "page_down", Context::Lists, &["PageDown"], "move a page down"),
    (Action::PageUp, "page_up", Context::Lists, &["PageUp"], "move a page up"),
    (Action::First, "first", Context::Lists, &["Home", "g"], "first row"),
    (Action::Last, "last", Context::Lists, &["End", "G"], "last row"),
    (Action::Open, "open", Context::Lists, &["Enter", "l", "Right"], "open a folder / a batch's entries"),
    (
        Action::Back,
        "back",
        Context::Lists,
        &["Left", "h", "Backspace"],
        "up to the parent folder / back to the batch list",
    ),
    (Action::Mark, "mark", Context::Browser, &["Space"], "mark or unmark the entry and move down"),
    (Action::MarkAll, "mark_all", Context::Browser, &["A"], "mark every entry shown here (again: unmark)"),
    (Action::Filter, "filter", Context::Browser, &["/"], "filter this folder by name (Enter keeps, Esc clears)"),
    (Action::ClearFilter, "clear_filter", Context::Browser, &["Esc"], "clear the filter"),
    (
        Action::ToggleHidden,
        "toggle_hidden",
        Context::Browser,
        &["."],
        "show or hide dot-entries (batches include them)",
    ),
    (Action::SortName, "sort_name", Context::Browser, &["N"], "sort by name (again: reverse)"),
    (Action::SortSize, "sort_size", Context::Browser, &["S"], "sort by size (again: reverse)"),
    (Action::SortCount, "sort_count", Context::Browser, &["C"], "sort by file count (again: reverse)"),
    (Action::Remove, "remove", Context::Browser, &["x", "Delete"], "take the entry's files out of their batches"),
    (Action::Remove, "remove", Context::Batches, &["x", "Delete"], "remove the batch (asks)"),
    (Action::CancelBuild, "cancel_build", Context::Batches, &["c"], "cancel the batch's build (temporaries removed)"),
    (Action::Retry, "retry", Context::Batches, &["r"], "retry a failed batch, or take over a stale lock"),
    (
        Action::Replan,
        "replan",
        Context::Batches,
        &["R"],
        "re-plan a batch whose files changed (sizes read again, a new ID)",
    ),
    (Action::Remove, "remove", Context::Entries, &["x", "Delete"], "take the file out of the batch"),
    (Action::Back, "back", Context::Entries, &["Esc"], "back to the batch list"),
    (Action::DryRun, "dry_run", Context::Preview, &["d"], "dry run: hash the batch without writing a CAR"),
    (Action::Close, "close", Context::Preview, &["Esc", "q", "v", "c"], "cancel a dry run / close"),
    (Action::Copy, "copy", Context::Info, &["y", "Enter"], "copy the selected value (OSC 52)"),
];

/// A key: its code, and whether Ctrl is held (Shift is part of a character's code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Whether Ctrl is held.
    pub ctrl: bool,
}

impl Key {
    /// The key an event names.
    pub fn of(k: &KeyEvent) -> Key {
        Key { code: k.code, ctrl: k.modifiers.contains(KeyModifiers::CONTROL) }
    }

    /// Parses a key name: a character, `Space`, `Enter`, `Esc`, `Tab`, `BackTab`, `Backspace`,
    /// `Delete`, `Up`, `Down`, `Left`, `Right`, `Home`, `End`, `PageUp`, `PageDown`, `F1`…`F12`,
    /// each optionally prefixed with `Ctrl-`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let (ctrl, name) = match s.strip_prefix("Ctrl-").or_else(|| s.strip_prefix("ctrl-")) {
            Some(rest) if !rest.is_empty() => (true, rest),
            _ => (false, s),
        };
        let code = match name {
            "Space" => KeyCode::Char(' '),
            "Enter" => KeyCode::Enter,
            "Esc" => KeyCode::Esc,
            "Tab" => KeyCode::Tab,
            "BackTab" => KeyCode::BackTab,
            "Backspace" => KeyCode::Backspace,
            "Delete" => KeyCode::Delete,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            "Home" => KeyCode::Home,
            "End" => KeyCode::End,
            "PageUp" => KeyCode::PageUp,
            "PageDown" => KeyCode::PageDown,
            f if f.len() >= 2 && f.starts_with('F') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
                KeyCode::F(f[1..].parse().expect("checked"))
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().expect("one character")),
            _ => {
                return Err(format!("{s:?} is not a key name (a character, Space, Enter, Esc, Tab, Up, F1, Ctrl-x, …)"))
            }
        };
        Ok(Key { code, ctrl })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Delete"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One binding in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Where it applies.
    pub context: Context,
    /// What it does.
    pub action: Action,
    /// The action's name in `config.json`.
    pub name: &'static str,
    /// Its keys (the first is the one footers show).
    pub keys: Vec<Key>,
    /// What the help says.
    pub help: &'static str,
}

/// The bindings in force: the defaults with the operator's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = DEFAULTS
            .iter()
            .map(|&(action, name, context, keys, help)| Binding {
                context,
                action,
                name,
                keys: keys.iter().map(|k| Key::parse(k).expect("default keys parse")).collect(),
                help,
            })
            .collect();
        Keymap { bindings }
    }
}

impl Keymap {
    /// The defaults with `changes` (action name → keys, as `config.json`'s `"keys"` gives them)
    /// applied to every binding of that action. An unknown action, an unknown key name, or a
    /// key bound twice where both bindings can apply at once is an error naming it.
    pub fn with_changes(changes: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for (name, keys) in changes {
            if !map.bindings.iter().any(|b| b.name == name) {
                let names: Vec<&str> = DEFAULTS.iter().map(|d| d.1).collect();
                return Err(format!("keys: unknown action {name:?} (actions: {})", names.join(", ")));
            }
            let keys = keys.iter().map(|k| Key::parse(k)).collect::<Result<Vec<Key>, String>>()?;
            if keys.is_empty() {
                return Err(format!("keys: {name} has no key"));
            }
            for b in map.bindings.iter_mut().filter(|b| b.name == name) {
                b.keys = keys.clone();
            }
        }
        map.check()?;
        Ok(map)
    }

    /// No key may mean two actions where both apply: within a context, or between the global
    /// context (which wins outside dialogs) and a pane. (A pane's or dialog's own binding wins
    /// over a list movement on purpose: Enter copies in the info screen.)
    fn check(&self) -> Result<(), String> {
        let pane = |c: Context| matches!(c, Context::Lists | Context::Browser | Context::Batches | Context::Entries);
        let overlap =
            |a: Context, b: Context| a == b || (a == Context::Global && pane(b)) || (b == Context::Global && pane(a));
        for (i, x) in self.bindings.iter().enumerate() {
            for y in &self.bindings[i + 1..] {
                if x.action == y.action || !overlap(x.context, y.context) {
                    continue;
                }
                if let Some(k) = x.keys.iter().find(|k| y.keys.contains(k)) {
                    return Err(format!("keys: {k} is bound to both {} and {}", x.name, y.name));
                }
            }
        }
        Ok(())
    }

    /// The action `k` means in the first of `contexts` that binds it.
    pub fn action(&self, contexts: &[Context], k: &KeyEvent) -> Option<Action> {
        let key = Key::of(k);
        contexts
            .iter()
            .find_map(|c| self.bindings.iter().find(|b| b.context == *c && b.keys.contains(&key)).map(|b| b.action))
    }

    /// The first key of `action` (in `context` when it has a binding there), for footers and
    /// messages.
    pub fn key(&self, action: Action, context: Context) -> String {
        let b = self
            .bindings
            .iter()
            .find(|b| b.action == action && b.context == context)
            .or_else(|| self.bindings.iter().find(|b| b.action == action));
        b.and_then(|b| b.keys.first()).map_or_else(|| "(unbound)".into(), |k| k.to_string())
    }

    /// The help screen: every binding in force, grouped by context, with all its keys.
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        let mut groups: Vec<(Context, Vec<(String, &'static str)>)> = Vec::new();
        for b in &self.bindings {
            let keys = b.keys.iter().map(Key::to_string).collect::<Vec<_>>().join(" ");
            match groups.iter_mut().find(|(c, _)| *c == b.context) {
                Some((_, v)) => v.push((keys, b.help)),
                None => groups.push((b.context, vec![(keys, b.help)])),
            }
        }
        groups.into_iter().map(|(c, v)| (c.title(), v)).collect()
    }
}

/// A footer item: actions whose first keys are joined by `join`, then `label`.
pub type FooterItem = (&'static [Action], &'static str, &'static str);

/// The footer of the browser.
pub const FOOTER_BROWSER: &[FooterItem] = &[
    (&[Action::Mark], "", "mark"),
    (&[Action::MarkAll], "", "all"),
    (&[Action::Open], "", "open"),
    (&[Action::Back], "", "up"),
    (&[Action::Filter], "", "filter"),
    (&[Action::SortSize, Action::SortName, Action::SortCount], " ", "sort"),
    (&[Action::AddMarked], "", "add"),
    (&[Action::AutoPack], "", "pack"),
    (&[Action::Preview], "", "preview"),
    (&[Action::Build], "", "build"),
    (&[Action::Save], "", "save"),
    (&[Action::ToggleProgress], "", "progress"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

/// The footer of the progress pane.
pub const FOOTER_PROGRESS: &[FooterItem] = &[
    (&[Action::ToggleProgress], "", "browser"),
    (&[Action::Build], "", "build"),
    (&[Action::BuildAll], "", "build all"),
    (&[Action::Export], "", "export"),
    (&[Action::SwitchFocus], "", "batches"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

/// The footer of the drives pane.
pub const FOOTER_DRIVES: &[FooterItem] = &[
    (&[Action::ToggleDrives], "", "browser"),
    (&[Action::AddDrive], "", "add drive"),
    (&[Action::BuildAll], "", "build all"),
    (&[Action::SwitchFocus], "", "batches"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

/// The footer of the deals pane.
pub const FOOTER_DEALS: &[FooterItem] = &[
    (&[Action::ToggleDeals], "", "browser"),
    (&[Action::BuildAll], "", "build all"),
    (&[Action::SwitchFocus], "", "batches"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

/// The footer of a batch's entries.
pub const FOOTER_ENTRIES: &[FooterItem] = &[
    (&[Action::Up, Action::Down], "", "move"),
    (&[Action::Remove], "", "remove file"),
    (&[Action::Back], "", "back"),
    (&[Action::Preview], "", "preview"),
    (&[Action::Save], "", "save"),
    (&[Action::SwitchFocus], "", ""),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

/// The footer of the batch list.
pub const FOOTER_BATCHES: &[FooterItem] = &[
    (&[Action::Up, Action::Down], "", "select"),
    (&[Action::Open], "", "entries"),
    (&[Action::Info], "", "info"),
    (&[Action::Build], "", "build"),
    (&[Action::BuildAll], "", "all"),
    (&[Action::CancelBuild], "", "cancel"),
    (&[Action::Retry], "", "retry"),
    (&[Action::Remove], "", "remove"),
    (&[Action::Preview], "", "preview"),
    (&[Action::Export], "", "export"),
    (&[Action::Save], "", "save"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

impl Keymap {
    /// A footer line from its items, with the keys in force, as seen from `context`.
    pub fn footer(&self, items: &[FooterItem], context: Context) -> String {
        items
            .iter()
            .map(|(actions, join, label)| {
                let keys: Vec<String> = actions.iter().map(|a| self.key(*a, context)).collect();
                let keys = keys.join(join);
                if label.is_empty() {
                    keys
                } else {
                    format!("{keys} {label}")
                }
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn ctrl_never_aliases_a_plain_key_and_shift_is_in_the_character() {
        let m = Keymap::default();
        let ctx = [Context::Browser, Context::Global];
        assert_eq!(m.action(&ctx, &press(KeyCode::Char('x'), KeyModifiers::NONE)), Some(Action::Remove));
        assert_eq!(m.action(&ctx, &press(KeyCode::Char('x'), KeyModifiers::CONTROL)), None);
        assert_eq!(m.action(&ctx, &press(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(m.action(&ctx, &press(KeyCode::Char('B'), KeyModifiers::SHIFT)), Some(Action::BuildAll));
    }

    #[test]
    fn the_defaults_are_consistent_and_every_action_has_help_and_a_key() {
        let m = Keymap::default();
        m.check().unwrap();
        let help = m.help();
        let listed: usize = help.iter().map(|(_, v)| v.len()).sum();
        assert_eq!(listed, DEFAULTS.len(), "the help lists every binding");
        for key in ["c", "r", "R", "y", "d", "u", "U", "Ctrl-R"] {
            assert!(help.iter().flat_map(|(_, v)| v).any(|(k, _)| k.split(' ').any(|x| x == key)), "{key} in the help");
        }
    }

    #[test]
    fn bindings_can_be_changed_and_mistakes_are_named() {
        let change = |pairs: &[(&str, &[&str])]| {
            let m: BTreeMap<String, Vec<String>> =
                pairs.iter().map(|(a, k)| (a.to_string(), k.iter().map(|s| s.to_string()).collect())).collect();
            Keymap::with_changes(&m)
        };
        let m = change(&[("build", &["F5"]), ("quit", &["Ctrl-q"])]).unwrap();
        let ctx = [Context::Global];
        assert_eq!(m.action(&ctx, &press(KeyCode::F(5), KeyModifiers::NONE)), Some(Action::Build));
        assert_eq!(m.action(&ctx, &press(KeyCode::Char('b'), KeyModifiers::NONE)), None);
        assert_eq!(m.key(Action::Quit, Context::Global), "Ctrl-Q");
        assert!(m.help().iter().flat_map(|(_, v)| v).any(|(k, h)| k == "F5" && h.starts_with("build the selected")));
        assert!(change(&[("bild", &["b"])]).unwrap_err().contains("unknown action \"bild\""));
        assert!(change(&[("build", &["Hyper-b"])]).unwrap_err().contains("not a key name"));
        assert!(change(&[("build", &["s"])]).unwrap_err().contains("bound to both"));
        assert!(change(&[("mark", &["x"])]).unwrap_err().contains("bound to both"), "same context");
        // Keys in different contexts may repeat (x removes in each pane).
        assert!(change(&[("dry_run", &["x"])]).is_ok());
    }
}
