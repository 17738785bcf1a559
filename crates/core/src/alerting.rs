//! Alert rules over vital signs, with Prometheus-like semantics: a rule fires when its
//! indicator's level in a region reaches the rule's level and stays there for `for`;
//! pending → firing → resolved; one alert per fingerprint (rule + region); silences (owner,
//! reason, expiry) and inhibition (a firing alert of one rule mutes the alerts of the
//! rules it names inside its region — region codes nest by prefix) suppress notices but
//! never the state itself. Pure: the service feeds levels and time, acts on the notices.

use crate::indicators::WarnLevel;
use crate::time::Millis;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub code: String,
    pub indicator: String,
    /// Fires at this level or above.
    pub at_least: WarnLevel,
    pub for_ms: Millis,
    /// Levels at which a firing alert becomes a case (orange and red by default).
    pub case_levels: Vec<WarnLevel>,
    pub category: String,
    /// Published as a CAP public warning.
    pub public: bool,
    /// Rules whose alerts this one mutes inside its region while it fires.
    pub inhibits: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Pending { since: Millis },
    Firing { since: Millis, level: WarnLevel },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub region: String,
    pub state: AlertState,
    pub value: f64,
}

/// What the service is told (unless silenced or inhibited).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Fired {
        fingerprint: String,
        level: WarnLevel,
        value: f64,
    },
    LevelChanged {
        fingerprint: String,
        from: WarnLevel,
        to: WarnLevel,
        value: f64,
    },
    Resolved {
        fingerprint: String,
        value: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: u64,
    pub rule: String,
    /// A region code; the silence covers it and every region inside it.
    pub region: String,
    pub owner: String,
    pub reason: String,
    pub ends_at: Millis,
}

pub fn fingerprint(rule: &str, region: &str) -> String {
    format!("{rule}@{region}")
}

/// Region codes nest by prefix (district 310104 ⊃ sub-district 310104003 ⊃ …).
fn within(inner: &str, outer: &str) -> bool {
    inner.starts_with(outer)
}

#[derive(Debug, Default)]
pub struct Alerting {
    alerts: BTreeMap<String, Alert>,
    silences: Vec<Silence>,
    next_silence: u64,
}

impl Alerting {
    pub fn alerts(&self) -> impl Iterator<Item = (&String, &Alert)> {
        self.alerts.iter()
    }

    /// A new level of `rule`'s indicator in `region` at `now`; answers the notice to give,
    /// if any (already filtered by silences and inhibition).
    pub fn evaluate(
        &mut self,
        rules: &[AlertRule],
        rule: &AlertRule,
        region: &str,
        level: WarnLevel,
        value: f64,
        now: Millis,
    ) -> Option<Notice> {
        let fp = fingerprint(&rule.code, region);
        let breach = level >= rule.at_least && level != WarnLevel::Normal;
        let notice = match (self.alerts.get(&fp).map(|a| a.state), breach) {
            (None, false) => None,
            (Some(_), false) => {
                let was = self.alerts.remove(&fp).expect("present");
                match was.state {
                    AlertState::Firing { .. } => Some(Notice::Resolved {
                        fingerprint: fp.clone(),
                        value,
                    }),
                    AlertState::Pending { .. } => None,
                }
            }
            (None, true) => {
                let state = if rule.for_ms == 0 {
                    AlertState::Firing { since: now, level }
                } else {
                    AlertState::Pending { since: now }
                };
                self.alerts.insert(
                    fp.clone(),
                    Alert {
                        rule: rule.code.clone(),
                        region: region.to_string(),
                        state,
                        value,
                    },
                );
                matches!(state, AlertState::Firing { .. }).then(|| Notice::Fired {
                    fingerprint: fp.clone(),
                    level,
                    value,
                })
            }
            (Some(AlertState::Pending { since }), true) => {
                let a = self.alerts.get_mut(&fp).expect("present");
                a.value = value;
                if now - since >= rule.for_ms {
                    a.state = AlertState::Firing { since, level };
                    Some(Notice::Fired {
                        fingerprint: fp.clone(),
                        level,
                        value,
                    })
                } else {
                    None
                }
            }
            (Some(AlertState::Firing { since, level: from }), true) => {
                let a = self.alerts.get_mut(&fp).expect("present");
                a.value = value;
                a.state = AlertState::Firing { since, level };
                (from != level).then(|| Notice::LevelChanged {
                    fingerprint: fp.clone(),
                    from,
                    to: level,
                    value,
                })
            }
        };
        notice.filter(|_| {
            !self.silenced(&rule.code, region, now) && !self.inhibited(rules, &rule.code, region)
        })
    }

    /// Is a notice of `rule` in `region` silenced at `now`?
    pub fn silenced(&self, rule: &str, region: &str, now: Millis) -> bool {
        self.silences
            .iter()
            .any(|s| s.rule == rule && within(region, &s.region) && now < s.ends_at)
    }

    /// Is `rule` in `region` muted by a firing alert of a rule that inhibits it?
    pub fn inhibited(&self, rules: &[AlertRule], rule: &str, region: &str) -> bool {
        self.alerts.values().any(|a| {
            matches!(a.state, AlertState::Firing { .. })
                && within(region, &a.region)
                && rules
                    .iter()
                    .any(|r| r.code == a.rule && r.inhibits.iter().any(|x| x == rule))
        })
    }

    /// Adds a silence; answers its id. An expiry in the past or no reason is refused.
    pub fn silence(
        &mut self,
        rule: &str,
        region: &str,
        owner: &str,
        reason: &str,
        ends_at: Millis,
        now: Millis,
    ) -> Result<u64, String> {
        if ends_at <= now {
            return Err("a silence must end in the future".into());
        }
        if reason.trim().is_empty() || owner.trim().is_empty() {
            return Err("a silence names its owner and its reason".into());
        }
        self.next_silence += 1;
        self.silences.push(Silence {
            id: self.next_silence,
            rule: rule.to_string(),
            region: region.to_string(),
            owner: owner.to_string(),
            reason: reason.to_string(),
            ends_at,
        });
        Ok(self.next_silence)
    }

    /// Ends a silence now.
    pub fn expire(&mut self, id: u64, now: Millis) -> bool {
        match self
            .silences
            .iter_mut()
            .find(|s| s.id == id && s.ends_at > now)
        {
            Some(s) => {
                s.ends_at = now;
                true
            }
            None => false,
        }
    }

    /// Silences still in force.
    pub fn silences(&self, now: Millis) -> impl Iterator<Item = &Silence> {
        self.silences.iter().filter(move |s| s.ends_at > now)
    }
}

impl AlertRule {
    /// Does a firing alert at `level` become a case?
    pub fn opens_case(&self, level: WarnLevel) -> bool {
        self.case_levels.contains(&level)
    }
}
