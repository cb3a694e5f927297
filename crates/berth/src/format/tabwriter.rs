//! Elastic tabstops as Go's `text/tabwriter` computes them (Docker's tables use
//! `NewWriter(out, 10, 1, 3, ' ', 0)`): cells are tab-terminated, a column's width is its
//! widest cell plus padding (at least `minwidth`) over each block of consecutive lines that
//! have that column, and the text after a line's last tab is not part of any column.

use unicode_width::UnicodeWidthStr;

struct Cell {
    text: String,
    width: usize,
}

/// Aligns `input` (lines of tab-terminated cells) with spaces.
pub fn tabwrite(input: &str, minwidth: usize, padding: usize) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    // Lines are split on '\n'; a single-cell line flushes (ends every column block), as in Go.
    let mut block: Vec<Vec<Cell>> = Vec::new();
    let raw_lines: Vec<&str> = input.split('\n').collect();
    let last = raw_lines.len() - 1;
    for (i, raw) in raw_lines.iter().enumerate() {
        let cells: Vec<Cell> = raw
            .split('\t')
            .map(|t| Cell {
                text: t.to_owned(),
                width: UnicodeWidthStr::width(t),
            })
            .collect();
        let single = cells.len() == 1;
        block.push(cells);
        if i == last {
            break;
        }
        if single {
            format_block(&block, minwidth, padding, &mut out, true);
            block.clear();
        }
    }
    format_block(&block, minwidth, padding, &mut out, false);
    out
}

/// Formats `lines`; every line but the last gets a newline unless `all_terminated`.
fn format_block(
    lines: &[Vec<Cell>],
    minwidth: usize,
    padding: usize,
    out: &mut String,
    all_terminated: bool,
) {
    let mut widths: Vec<usize> = Vec::new();
    format_range(
        lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        out,
        all_terminated,
    );
}

#[allow(clippy::too_many_arguments)]
fn format_range(
    lines: &[Vec<Cell>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
    all_terminated: bool,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A column block starts here: print the lines before it with the known widths.
        write_lines(lines, line0, this, widths, out, all_terminated);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].width + padding);
            this += 1;
        }
        widths.push(width);
        format_range(
            lines,
            line0,
            this,
            widths,
            minwidth,
            padding,
            out,
            all_terminated,
        );
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out, all_terminated);
}

fn write_lines(
    lines: &[Vec<Cell>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
    all_terminated: bool,
) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(&cell.text);
            if j + 1 < line.len() && j < widths.len() {
                for _ in cell.width..widths[j] {
                    out.push(' ');
                }
            }
        }
        if all_terminated || i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_shape() {
        let input = "CONTAINER ID\tIMAGE\tNAMES\n4fa6e0f0c678\tbusybox\tweb\nabc\tx\tlonger-name\n";
        let want = "\
CONTAINER ID   IMAGE     NAMES
4fa6e0f0c678   busybox   web
abc            x         longer-name
";
        assert_eq!(tabwrite(input, 10, 3), want);
    }

    #[test]
    fn minwidth_applies_and_last_cell_is_not_a_column() {
        let input = "A\tB\nx\tyyyyyyyyyyyyyyyyyyyy\n";
        assert_eq!(
            tabwrite(input, 10, 3),
            "A         B\nx         yyyyyyyyyyyyyyyyyyyy\n"
        );
    }

    #[test]
    fn column_blocks_are_per_contiguous_lines() {
        // Go's doc example: b and c are in distinct columns.
        let input = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n";
        let got = tabwrite(input, 0, 1);
        let want = "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n";
        assert_eq!(got, want);
    }

    #[test]
    fn lines_without_tabs_flush_and_wide_chars_count_double() {
        let input = "T\tX\n中文\t1\nplain line\nab\tcd\n";
        let got = tabwrite(input, 0, 1);
        assert_eq!(got, "T    X\n中文 1\nplain line\nab cd\n");
        assert_eq!(tabwrite("", 10, 3), "");
        assert_eq!(tabwrite("no newline", 10, 3), "no newline");
    }
}
