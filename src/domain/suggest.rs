//! Near-match suggestions for a mistyped key.

/// The closest candidate, when it is close enough to be a likely typo. Case
/// does not count (`JIRA` suggests `jira`): keys are lower case, and a
/// client that capitalises one has made the likeliest typo of all.
pub fn closest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let given = given.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&given, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_only_near_matches() {
        let keys = ["jira.username", "jira.password", "jira.api.url"];
        assert_eq!(closest("jira.pasword", keys.into_iter()).as_deref(), Some("jira.password"));
        assert_eq!(closest("jira.api.uri", keys.into_iter()).as_deref(), Some("jira.api.url"));
        assert_eq!(closest("colour", keys.into_iter()), None);
        assert_eq!(closest("jra", ["jira"].into_iter()).as_deref(), Some("jira"));
        assert_eq!(closest("JIRA", ["jira"].into_iter()).as_deref(), Some("jira"));
        assert_eq!(closest("Jira.UserName", keys.into_iter()).as_deref(), Some("jira.username"));
    }
}
