<?php

use App\Http\Controllers\HomeController;
use Illuminate\Support\Facades\Route;

// Controllers, not closures: Laravel 8's route:cache refuses closures.
Route::get('/', HomeController::class)->name('home');
