//! Putting a mix's jobs on an option's slots. A job fits a slot only if its peak plus margin
//! (its `need`) fits the slot's memory. Exclusive slots (MIG instances) run one job at a time;
//! shared slots (MPS) run concurrently as many as fit by peak. The first wave is chosen to
//! run as many jobs at once as possible; the rest are queued on fitting slots, each on the
//! one that would finish it soonest (work ÷ SM share as the speed proxy). Only the placement
//! is decided here: makespans come from the model.

/// A slot: its memory and its speed proxy (SM share).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    pub capacity: u64,
    pub speed: f64,
}

/// A job: bytes it needs (peak + margin) and its relative work (solo seconds, or 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub need: u64,
    pub work: f64,
}

/// Jobs per slot (indexes into the job list, in queue order), how many of each queue start
/// at once, and the jobs no slot fits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment {
    pub queues: Vec<Vec<usize>>,
    pub first_wave: Vec<usize>,
    pub unplaced: Vec<usize>,
}

impl Assignment {
    /// Jobs running at once at the start.
    pub fn parallel(&self) -> usize {
        self.first_wave.iter().sum()
    }
}

/// Search budget of the exact packing, in nodes; past it a packing counts as impossible
/// (so a count is never over-stated).
const PACK_BUDGET: usize = 200_000;

fn placeable(bins: &[Bin], jobs: &[Job]) -> (Vec<usize>, Vec<usize>) {
    let max = bins.iter().map(|b| b.capacity).max().unwrap_or(0);
    (0..jobs.len()).partition(|&j| jobs.get(j).is_some_and(|x| x.need <= max))
}

/// Queues `rest` (largest work first) where each finishes soonest; `load` is per-bin time.
fn queue_rest(
    bins: &[Bin],
    jobs: &[Job],
    rest: &mut [usize],
    a: &mut Assignment,
    load: &mut [f64],
) {
    rest.sort_by(|&x, &y| {
        let (jx, jy) = (&jobs[x], &jobs[y]);
        jy.work
            .total_cmp(&jx.work)
            .then(jy.need.cmp(&jx.need))
            .then(x.cmp(&y))
    });
    for &j in rest.iter() {
        let job = jobs[j];
        let best = bins
            .iter()
            .enumerate()
            .filter(|(_, b)| job.need <= b.capacity)
            .min_by(|(x, bx), (y, by)| {
                let fx = load[*x] + job.work / bx.speed.max(f64::MIN_POSITIVE);
                let fy = load[*y] + job.work / by.speed.max(f64::MIN_POSITIVE);
                fx.total_cmp(&fy).then(x.cmp(y))
            })
            .map(|(i, _)| i);
        match best {
            Some(b) => {
                load[b] += job.work / bins[b].speed.max(f64::MIN_POSITIVE);
                a.queues[b].push(j);
            }
            None => a.unplaced.push(j),
        }
    }
}

/// One job at a time per bin. `preset` (if not empty) gives each bin's first job; otherwise
/// the first wave is a maximum matching: bins from the smallest up, each taking the largest
/// unassigned job that fits it.
pub fn exclusive(bins: &[Bin], jobs: &[Job], preset: &[Option<usize>]) -> Assignment {
    let mut a = Assignment {
        queues: vec![Vec::new(); bins.len()],
        first_wave: vec![0; bins.len()],
        unplaced: Vec::new(),
    };
    let (ok, unplaced) = placeable(bins, jobs);
    a.unplaced = unplaced;
    let mut taken = vec![false; jobs.len()];
    let mut load = vec![0.0; bins.len()];
    let mut first: Vec<Option<usize>> = vec![None; bins.len()];
    if preset.is_empty() {
        let mut order: Vec<usize> = (0..bins.len()).collect();
        order.sort_by(|&x, &y| {
            bins[x]
                .capacity
                .cmp(&bins[y].capacity)
                .then(bins[y].speed.total_cmp(&bins[x].speed))
                .then(x.cmp(&y))
        });
        for b in order {
            let pick = ok
                .iter()
                .copied()
                .filter(|&j| !taken[j] && jobs[j].need <= bins[b].capacity)
                .max_by(|&x, &y| {
                    jobs[x]
                        .need
                        .cmp(&jobs[y].need)
                        .then(jobs[x].work.total_cmp(&jobs[y].work))
                        .then(y.cmp(&x))
                });
            if let Some(j) = pick {
                taken[j] = true;
                first[b] = Some(j);
            }
        }
    } else {
        for (b, p) in preset.iter().enumerate().take(bins.len()) {
            if let Some(j) = *p
                && jobs.get(j).is_some_and(|x| x.need <= bins[b].capacity)
                && !taken[j]
            {
                taken[j] = true;
                first[b] = Some(j);
            }
        }
    }
    for (b, f) in first.iter().enumerate() {
        if let Some(j) = *f {
            a.queues[b].push(j);
            a.first_wave[b] = 1;
            load[b] = jobs[j].work / bins[b].speed.max(f64::MIN_POSITIVE);
        }
    }
    let mut rest: Vec<usize> = ok.into_iter().filter(|&j| !taken[j]).collect();
    queue_rest(bins, jobs, &mut rest, &mut a, &mut load);
    a
}

/// Concurrent jobs per bin (MPS): the first wave is the largest number of jobs whose needs
/// pack into the bins at once (the smallest jobs, packed exactly); the rest are queued.
pub fn shared(bins: &[Bin], jobs: &[Job]) -> Assignment {
    let mut a = Assignment {
        queues: vec![Vec::new(); bins.len()],
        first_wave: vec![0; bins.len()],
        unplaced: Vec::new(),
    };
    let (mut ok, unplaced) = placeable(bins, jobs);
    a.unplaced = unplaced;
    ok.sort_by(|&x, &y| jobs[x].need.cmp(&jobs[y].need).then(x.cmp(&y)));
    let caps: Vec<u64> = bins.iter().map(|b| b.capacity).collect();
    let mut packed: Vec<(usize, usize)> = Vec::new();
    for k in (1..=ok.len()).rev() {
        let items: Vec<usize> = ok[..k].to_vec();
        let needs: Vec<u64> = items.iter().map(|&j| jobs[j].need).collect();
        if let Some(where_) = pack(&caps, &needs) {
            packed = items.into_iter().zip(where_).collect();
            break;
        }
    }
    let mut taken = vec![false; jobs.len()];
    let mut load = vec![0.0; bins.len()];
    packed.sort_by_key(|&(j, b)| (b, j));
    for (j, b) in packed {
        taken[j] = true;
        a.queues[b].push(j);
        a.first_wave[b] += 1;
        load[b] += jobs[j].work / bins[b].speed.max(f64::MIN_POSITIVE);
    }
    let mut rest: Vec<usize> = ok.into_iter().filter(|&j| !taken[j]).collect();
    queue_rest(bins, jobs, &mut rest, &mut a, &mut load);
    a
}

/// An exact bin packing of `needs` into bins of `caps` (bin per item), or `None` if there is
/// none (or the search exceeds its budget).
pub fn pack(caps: &[u64], needs: &[u64]) -> Option<Vec<usize>> {
    let total: u64 = needs.iter().sum();
    if total > caps.iter().sum() {
        return None;
    }
    let mut order: Vec<usize> = (0..needs.len()).collect();
    order.sort_by(|&x, &y| needs[y].cmp(&needs[x]).then(x.cmp(&y)));
    let mut left = caps.to_vec();
    let mut at = vec![0usize; needs.len()];
    let mut budget = PACK_BUDGET;
    if dfs(&order, needs, 0, &mut left, &mut at, &mut budget) {
        Some(at)
    } else {
        None
    }
}

fn dfs(
    order: &[usize],
    needs: &[u64],
    depth: usize,
    left: &mut [u64],
    at: &mut [usize],
    budget: &mut usize,
) -> bool {
    let Some(&i) = order.get(depth) else {
        return true;
    };
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let need = needs[i];
    let mut tried: Vec<u64> = Vec::new();
    for b in 0..left.len() {
        if left[b] < need || tried.contains(&left[b]) {
            continue;
        }
        tried.push(left[b]);
        left[b] -= need;
        at[i] = b;
        if dfs(order, needs, depth + 1, left, at, budget) {
            return true;
        }
        left[b] += need;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    fn bins(caps: &[(u64, f64)]) -> Vec<Bin> {
        caps.iter()
            .map(|&(c, s)| Bin {
                capacity: c * G,
                speed: s,
            })
            .collect()
    }

    fn jobs(needs: &[u64]) -> Vec<Job> {
        needs
            .iter()
            .map(|&n| Job {
                need: n * G,
                work: 1.0,
            })
            .collect()
    }

    #[test]
    fn exclusive_matches_as_many_as_fit() {
        // 40 and 20 GiB slots; 33, 33 and 10 GiB jobs: the 20 takes the 10, the 40 a 33.
        let a = exclusive(&bins(&[(40, 0.45), (20, 0.24)]), &jobs(&[33, 33, 10]), &[]);
        assert_eq!(a.parallel(), 2);
        assert_eq!(a.queues[1], vec![2]);
        assert_eq!(a.queues[0].len(), 2);
        assert!(a.unplaced.is_empty());
        let a = exclusive(&bins(&[(40, 0.5), (40, 0.5)]), &jobs(&[58, 33]), &[]);
        assert_eq!((a.parallel(), a.unplaced.clone()), (1, vec![0]));
    }

    #[test]
    fn shared_packs_the_most_jobs() {
        let a = shared(&bins(&[(89, 0.5), (89, 0.5)]), &jobs(&[33, 33, 33, 33, 33]));
        assert_eq!(a.parallel(), 4);
        assert_eq!(a.first_wave, vec![2, 2]);
        assert_eq!(a.queues.iter().map(Vec::len).sum::<usize>(), 5);
        // Exactness: 60+30 | 50+40 fits two 90s; first-fit-decreasing by size would too, but
        // 45,45,30,30,30 into 90,90 needs 45+45 | 30+30+30.
        assert!(pack(&[90, 90], &[45, 30, 45, 30, 30]).is_some());
        assert!(pack(&[90, 90], &[46, 46, 46]).is_none());
    }
}
