//! Matrices analysed side by side, the costliest first: one per thread at a time.
//!
//! Each matrix's analysis (its Gram matrix, the reductions) keeps one core busy with sequential
//! matrix products; two matrices at a time keep two cores busy without the synchronisation that
//! splitting one matrix's products across cores costs, and the costliest first leave the small ones
//! to fill in at the end instead of one large matrix running alone. Results come back in the order
//! of the items, so they do not depend on the schedule.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `work(item)` for every item, on as many workers as rayon has threads, each taking the costliest
/// item not yet started (by `cost`, ties in item order); the results in item order.
pub fn costliest_first<T, R>(
    items: &[T],
    cost: impl Fn(&T) -> f64,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| cost(&items[b]).total_cmp(&cost(&items[a])).then(a.cmp(&b)));
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(items.len());
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = work(&items[index]);
                    *results[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item was worked on")
        })
        .collect()
}

/// The flops of the exact path for a `rows × cols` matrix, for ordering: its Gram matrix
/// (max · min² for one triangle) and the reduction of it (4/3 · min³).
pub fn spectral_cost(rows: usize, cols: usize) -> f64 {
    let (small, large) = (rows.min(cols) as f64, rows.max(cols) as f64);
    large * small * small + 4.0 / 3.0 * small.powi(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_results_in_item_order() {
        let items: Vec<u64> = (0..50).map(|i| (i * 37) % 11).collect();
        for threads in [1, 2, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let started = Mutex::new(Vec::new());
            let results = pool.install(|| {
                costliest_first(
                    &items,
                    |&item| item as f64,
                    |&item| {
                        started.lock().unwrap().push(item);
                        item * 2
                    },
                )
            });
            let expected: Vec<u64> = items.iter().map(|item| item * 2).collect();
            assert_eq!(results, expected, "{threads} threads");
            let started = started.into_inner().unwrap();
            assert_eq!(started.len(), items.len());
            if threads == 1 {
                // One worker takes them strictly costliest first.
                assert!(started.windows(2).all(|pair| pair[0] >= pair[1]));
            }
        }
    }
}
