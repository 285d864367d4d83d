module example.com/hello

go 1.18

require rsc.io/quote v1.5.2
