# bench/plot.gp: bar chart of the medians, each workload's times relative to
# the reference filesystem (kernel overlayfs), log scale.  Set from the
# command line: datafile, outfile, ref, subtitle, ncols (columns of datafile).
set terminal pngcairo size 1400,650 font "sans,10"
set output outfile
set title sprintf("strata bench: time relative to %s (= 1), lower is better\n%s", ref, subtitle)
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set format y "%g"
set ylabel sprintf("median time / %s", ref)
set grid ytics
set key outside bottom center horizontal
set xtics rotate by -30
set datafile missing "?"
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 back
plot for [i=2:ncols] datafile using i:xtic(1) title columnheader(i)
