//! `filter.response.nulls` (default `true`): every member whose value is
//! `null` removed from a vendor's answer, at every depth (inside arrays too;
//! an array's own `null` items are kept: they are not members).

use serde_json::Value;

/// Removes every `null` member of every object in `value`.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nulls_go_at_every_depth() {
        let mut v = json!({"a": null, "b": {"c": null, "d": [ {"e": null, "f": 1}, null ]}, "g": 0, "h": ""});
        strip_nulls(&mut v);
        assert_eq!(v, json!({"b": {"d": [ {"f": 1}, null ]}, "g": 0, "h": ""}));
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,3}".prop_map(Value::from)
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn has_null_member(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.values().any(|x| x.is_null() || has_null_member(x)),
            Value::Array(items) => items.iter().any(has_null_member),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn no_null_member_is_left_and_nothing_else_goes(v in arbitrary_json()) {
            let mut stripped = v.clone();
            strip_nulls(&mut stripped);
            prop_assert!(!has_null_member(&stripped));
            // Stripping again changes nothing; what had no null member is untouched.
            let mut again = stripped.clone();
            strip_nulls(&mut again);
            prop_assert_eq!(&again, &stripped);
            if !has_null_member(&v) {
                prop_assert_eq!(stripped, v);
            }
        }
    }
}
